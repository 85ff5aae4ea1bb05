//! A bus endpoint: one listening `SOCK_SEQPACKET` socket in the bus directory, one
//! outgoing connection per peer, fan-out by non-blocking sends.
//!
//! Why connections and not datagrams: a Unix *datagram* receiver queue is capped at
//! `net.unix.max_dgram_qlen` packets (10 on the kernels we run), so a reader descheduled
//! for 100 µs at 100k msg/s would lose messages; and datagram memory is charged to the
//! *sender's* one send buffer, so a single stalled reader would fill it and make every
//! send fail. A connected `SOCK_SEQPACKET` pair keeps message boundaries, is not subject
//! to the packet-count cap, and charges memory to that connection's own send buffer: a
//! stalled reader fills only its own connection (EAGAIN there, drop counted for that
//! peer), everyone else keeps receiving, and the writer never blocks.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{
    self, AddressFamily, Backlog, MsgFlags, SockFlag, SockType, UnixAddr, sockopt,
};
use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::frame::{self, FrameError, MAX_FRAME};
use crate::message::{Body, Header, Message, StateDump, StateEnd, StateItem};

/// Default location of the bus directories.
pub const DEFAULT_ROOT: &str = "/run/mipsock";
/// Environment variable naming the bus directory (overrides `/run/mipsock/<bus>`).
pub const ENV_DIR: &str = "MIPSOCK_DIR";
/// Suffix of endpoint sockets in the bus directory.
const SOCK_SUFFIX: &str = ".sock";
/// epoll token of the listening socket; accepted connections count up from 1.
const LISTENER_TOKEN: u64 = 0;
/// A directory modified this recently may change again within the same timestamp tick,
/// so its listing is not trusted to be current ("racy git" problem).
const RACY_WINDOW: Duration = Duration::from_millis(100);
/// Senders whose serials a reader tracks for gap detection before it starts afresh.
const MAX_TRACKED_SENDERS: usize = 4096;
/// Inbound connections an endpoint keeps open at most. Beyond it the oldest is closed: a
/// flood of idle connections cannot take the daemon to its open-file limit, and a live
/// writer whose connection was closed reconnects on its next send.
pub const MAX_INBOUND: usize = 256;
/// Items per state dump chunk are bounded by encoded size, with this much headroom.
const DUMP_CHUNK_BYTES: usize = frame::MAX_BODY / 2;
/// How long a state dump waits, in all, for room in its requester's queue. The requester
/// asked and is reading, but a fleet's dump (100,000 bindings: about 300 datagrams) is
/// more than the queue holds, and what is dropped from a dump makes it useless.
const DUMP_PATIENCE: Duration = Duration::from_secs(5);

/// The bus directory: `MIPSOCK_DIR` if set, else `/run/mipsock/<bus>`.
pub fn bus_dir_from_env(bus: &str) -> PathBuf {
    match std::env::var_os(ENV_DIR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(DEFAULT_ROOT).join(bus),
    }
}

/// How an endpoint is opened.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// Also deliver this endpoint's own messages to itself (AF_MOBILITY's loopback).
    pub receive_own: bool,
    /// Group allowed to use the bus; `None`: root only. Directory 0770, sockets 0660.
    pub group: Option<u32>,
    /// Send buffer of each outgoing connection: how much a slow reader may lag before
    /// messages to it are dropped (kernel accounting doubles it; ~1 KiB per small message).
    pub send_buffer: usize,
    /// Create the bus directory if missing.
    pub create_dir: bool,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            receive_own: false,
            group: None,
            send_buffer: 4 << 20,
            create_dir: true,
        }
    }
}

/// What a receive produced: a message, or a frame that was skipped (and counted).
#[derive(Debug)]
pub enum Event {
    /// A valid message.
    Message(Message),
    /// A frame that was not delivered: garbage, or an unknown version or type.
    Skipped(FrameError),
}

/// Outcome of one send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Peers the message was queued to.
    pub delivered: usize,
    /// Peers whose queue was full (or who could not be reached): dropped for them.
    pub dropped: usize,
}

/// Counters of one peer, as seen by this endpoint's sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Socket file name of the peer (`<name>.<pid>.<n>.sock`).
    pub socket: String,
    /// Messages queued to it.
    pub delivered: u64,
    /// Messages dropped for it (its queue was full).
    pub dropped: u64,
}

/// Counters of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages sent (each counted once, whatever the number of peers).
    pub sent: u64,
    /// Per-peer deliveries, summed.
    pub delivered: u64,
    /// Per-peer drops, summed (slow readers).
    pub dropped: u64,
    /// Stale sockets of dead endpoints removed.
    pub stale_removed: u64,
    /// Valid messages received.
    pub received: u64,
    /// Frames received that were not ours or broken (logged and dropped).
    pub garbage: u64,
    /// Well-formed frames of an unknown version or message type (skipped).
    pub unknown: u64,
    /// Messages other endpoints had to drop for us, from gaps in their serials.
    pub missed: u64,
    /// Per-peer send counters of the current peers, by socket file name (a peer that
    /// left is folded into `delivered` / `dropped`, so short-lived clients such as
    /// `mipsock state` cost no memory once gone).
    pub peers: Vec<PeerStats>,
}

/// One outgoing connection.
#[derive(Debug)]
struct Peer {
    fd: Option<OwnedFd>,
    /// The last message for this peer was dropped: it owes a [`Body::GapNotice`].
    owed: bool,
}

enum PeerSend {
    Delivered,
    Dropped,
    Gone,
}

#[derive(Debug)]
struct TxState {
    peers: BTreeMap<PathBuf, Peer>,
    dir_mtime: Option<SystemTime>,
    serial: u64,
    buf: Vec<u8>,
    peer_stats: BTreeMap<String, PeerStats>,
    /// (delivered, dropped) of peers that left.
    departed: (u64, u64),
}

impl TxState {
    /// Folds the counters of peers no longer on the bus into `departed`.
    fn prune_stats(&mut self) {
        if self.peer_stats.len() <= self.peers.len() {
            return;
        }
        let current: std::collections::BTreeSet<&str> =
            self.peers.keys().map(|p| file_name(p)).collect();
        let departed = &mut self.departed;
        self.peer_stats.retain(|name, st| {
            let keep = current.contains(name.as_str());
            if !keep {
                departed.0 += st.delivered;
                departed.1 += st.dropped;
            }
            keep
        });
    }
}

#[derive(Debug)]
struct RxState {
    inbound: HashMap<u64, OwnedFd>,
    next_token: u64,
    ready: VecDeque<u64>,
    buf: Vec<u8>,
    events: Vec<EpollEvent>,
    last_serial: HashMap<(u32, String), u64>,
    /// The further frames of a datagram that carried several ([`Endpoint::send_batch`]),
    /// decoded, handed out before anything else is read.
    pending: VecDeque<Event>,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    stale_removed: AtomicU64,
    received: AtomicU64,
    garbage: AtomicU64,
    unknown: AtomicU64,
    missed: AtomicU64,
}

/// A blocking bus endpoint. Methods take `&self`: one thread may send while another
/// receives (sends never wait for readers).
#[derive(Debug)]
pub struct Endpoint {
    dir: PathBuf,
    /// Held open so the per-send freshness check is an fstat, without a path lookup.
    dir_handle: fs::File,
    path: PathBuf,
    name: String,
    pid: u32,
    opts: EndpointOptions,
    listener: OwnedFd,
    epoll: Epoll,
    tx: Mutex<TxState>,
    rx: Mutex<RxState>,
    counters: Counters,
}

/// Distinguishes several endpoints of one process (tests, benchmarks).
static INSTANCE: AtomicU32 = AtomicU32::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain counters and fds: still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn seqpacket_socket() -> nix::Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// pid encoded in a socket file name `<name>.<pid>.<n>.sock`.
fn pid_of(file: &str) -> Option<i32> {
    let stem = file.strip_suffix(SOCK_SUFFIX)?;
    let mut parts = stem.rsplit('.');
    let _instance = parts.next()?;
    parts.next()?.parse().ok()
}

impl Endpoint {
    /// Opens an endpoint named `name` on the bus in `bus_dir`: creates the directory if
    /// needed, removes sockets left by dead processes, binds `<name>.<pid>.<n>.sock`.
    pub fn open(bus_dir: impl AsRef<Path>, name: &str, opts: EndpointOptions) -> Result<Self> {
        let dir = bus_dir.as_ref().to_path_buf();
        if !valid_name(name) {
            return Err(Error::BadName(name.to_string()));
        }
        prepare_dir(&dir, &opts)?;
        let pid = std::process::id();
        let instance = INSTANCE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{name}.{pid}.{instance}{SOCK_SUFFIX}"));
        if path.as_os_str().len() > 107 {
            return Err(Error::PathTooLong(path));
        }
        let bind_err = |source| Error::Bind {
            path: path.clone(),
            source,
        };
        // A crashed process with our pid (reused) may have left this very path.
        let _ = fs::remove_file(&path);
        let listener = seqpacket_socket().map_err(bind_err)?;
        let addr = UnixAddr::new(&path).map_err(bind_err)?;
        socket::bind(listener.as_raw_fd(), &addr).map_err(bind_err)?;
        socket::listen(&listener, Backlog::MAXCONN).map_err(bind_err)?;
        set_socket_perms(&path, &opts).map_err(|e| bind_err(io_to_nix(&e)))?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(bind_err)?;
        epoll
            .add(
                &listener,
                EpollEvent::new(EpollFlags::EPOLLIN, LISTENER_TOKEN),
            )
            .map_err(bind_err)?;
        let dir_handle = fs::File::open(&dir).map_err(|source| Error::BusDir {
            path: dir.clone(),
            source,
        })?;
        let ep = Endpoint {
            dir_handle,
            dir,
            path,
            name: name.to_string(),
            pid,
            opts,
            listener,
            epoll,
            tx: Mutex::new(TxState {
                peers: BTreeMap::new(),
                dir_mtime: None,
                serial: 0,
                buf: Vec::with_capacity(512),
                peer_stats: BTreeMap::new(),
                departed: (0, 0),
            }),
            rx: Mutex::new(RxState {
                inbound: HashMap::new(),
                next_token: LISTENER_TOKEN + 1,
                ready: VecDeque::new(),
                buf: vec![0; MAX_FRAME + 1],
                events: vec![EpollEvent::empty(); 64],
                last_serial: HashMap::new(),
                pending: VecDeque::new(),
            }),
            counters: Counters::default(),
        };
        ep.sweep_stale();
        info!(bus = %ep.dir.display(), socket = %ep.path.display(), "mipsock endpoint open");
        Ok(ep)
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The endpoint's socket path.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// The bus directory.
    pub fn bus_dir(&self) -> &Path {
        &self.dir
    }

    /// The fd that becomes readable when a message (or a connection) waits; for
    /// integration into an event loop. Call a `try_recv*` method when it is readable.
    pub fn readiness_fd(&self) -> RawFd {
        self.epoll.0.as_raw_fd()
    }

    /// Sends `msg` to every other endpoint (and to itself with `receive_own`). `seq` and
    /// `errno` are taken from `msg`; `pid`, `sender`, `serial` and `sent_at_ns` are filled
    /// in. Never blocks: a peer whose queue is full misses this message (counted).
    pub fn send(&self, msg: &Message) -> Result<SendReport> {
        self.send_with(msg, None)
    }

    /// [`Endpoint::send`], but for the endpoint of process `pid` waiting for room in its
    /// queue until `deadline` instead of dropping (the other peers as ever).
    fn send_with(&self, msg: &Message, wait: Option<(i32, Instant)>) -> Result<SendReport> {
        let mut tx = lock(&self.tx);
        let header = self.header(&msg.header, tx.serial + 1);
        let mut buf = std::mem::take(&mut tx.buf);
        buf.clear();
        let res = frame::encode_into(&mut buf, &header, &msg.body);
        let report = res.map(|()| self.fan_out(&mut tx, &buf, 1, wait));
        tx.buf = buf;
        let report = report?;
        // Counted only once encoded and sent: a refused message leaves no serial gap.
        tx.serial += 1;
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        Ok(report)
    }

    /// Sends `msgs` in order, as [`Endpoint::send`] does each, but with as many frames in
    /// one datagram as fit ([`MAX_FRAME`] octets): a reader asleep wakes once for them
    /// all. A busy home agent's step announces many binding changes at once; four readers
    /// woken for each made the wake-ups, not the bus, the limit (mipsock/README.md). A
    /// message that cannot be encoded refuses the whole batch, before anything is sent.
    pub fn send_batch(&self, msgs: &[Message]) -> Result<SendReport> {
        match msgs {
            [] => return Ok(SendReport::default()),
            [one] => return self.send(one),
            _ => {}
        }
        let mut tx = lock(&self.tx);
        let mut buf = std::mem::take(&mut tx.buf);
        buf.clear();
        // Every frame first, with its serial: nothing goes out unless all encode.
        let mut ends = Vec::with_capacity(msgs.len());
        for (msg, serial) in msgs.iter().zip(tx.serial + 1..) {
            let header = self.header(&msg.header, serial);
            if let Err(e) = frame::encode_into(&mut buf, &header, &msg.body) {
                tx.buf = buf;
                return Err(e.into());
            }
            ends.push(buf.len());
        }
        let mut report = SendReport::default();
        let (mut start, mut frames) = (0, 0);
        for (i, &end) in ends.iter().enumerate() {
            frames += 1;
            let next_fits = ends
                .get(i + 1)
                .is_some_and(|&next| next - start <= MAX_FRAME);
            if !next_fits {
                let r = self.fan_out(&mut tx, &buf[start..end], frames, None);
                report.delivered += r.delivered;
                report.dropped += r.dropped;
                (start, frames) = (end, 0);
            }
        }
        tx.buf = buf;
        tx.serial += msgs.len() as u64;
        self.counters
            .sent
            .fetch_add(msgs.len() as u64, Ordering::Relaxed);
        Ok(report)
    }

    /// The header a message goes out with: its `seq` and `errno`, our identity, `serial`
    /// and the time now.
    fn header(&self, msg: &Header, serial: u64) -> Header {
        Header {
            seq: msg.seq,
            errno: msg.errno,
            pid: self.pid,
            sender: self.name.clone(),
            serial,
            sent_at_ns: now_ns(),
        }
    }

    /// Sends raw octets as one frame to every peer, unchecked. For testing decoders and
    /// the bus's tolerance of garbage (`mipsock inject --raw-hex`).
    pub fn send_raw(&self, bytes: &[u8]) -> SendReport {
        let mut tx = lock(&self.tx);
        self.fan_out(&mut tx, bytes, 1, None)
    }

    /// Sends one datagram holding `frames` messages to every peer; the counts are in
    /// messages.
    fn fan_out(
        &self,
        tx: &mut TxState,
        frame: &[u8],
        frames: usize,
        wait: Option<(i32, Instant)>,
    ) -> SendReport {
        self.refresh_peers(tx);
        let mut report = SendReport::default();
        let mut gone = Vec::new();
        let TxState {
            peers, peer_stats, ..
        } = tx;
        for (path, peer) in peers.iter_mut() {
            let file = file_name(path);
            let patience =
                wait.and_then(|(pid, until)| (pid_of(file) == Some(pid)).then_some(until));
            let outcome = self.send_to_peer(path, peer, frame, patience);
            let st = match peer_stats.get_mut(file) {
                Some(st) => st,
                None => peer_stats
                    .entry(file.to_string())
                    .or_insert_with(|| PeerStats {
                        socket: file.to_string(),
                        ..PeerStats::default()
                    }),
            };
            peer.owed = matches!(outcome, PeerSend::Dropped);
            match outcome {
                PeerSend::Delivered => {
                    st.delivered += frames as u64;
                    report.delivered += frames;
                }
                PeerSend::Dropped => {
                    st.dropped += frames as u64;
                    report.dropped += frames;
                }
                PeerSend::Gone => gone.push(path.clone()),
            }
        }
        for path in gone {
            peers.remove(&path);
        }
        tx.prune_stats();
        report
    }

    fn send_to_peer(
        &self,
        path: &Path,
        peer: &mut Peer,
        frame: &[u8],
        patience: Option<Instant>,
    ) -> PeerSend {
        // Two tries: an established connection may have died (peer restarted or
        // crashed); the second try reconnects and tells which. A full queue we may wait
        // for does not count as a try.
        let mut tries = 0;
        while tries < 2 {
            tries += 1;
            let fd = match &peer.fd {
                Some(fd) => fd,
                None => match self.connect(path) {
                    Ok(fd) => peer.fd.insert(fd),
                    Err(Errno::EAGAIN) => return PeerSend::Dropped,
                    Err(Errno::ECONNREFUSED) => {
                        self.remove_stale(path);
                        return PeerSend::Gone;
                    }
                    Err(Errno::ENOENT) => return PeerSend::Gone,
                    Err(e) => {
                        warn!(peer = %path.display(), error = %e, "cannot connect to bus peer");
                        return PeerSend::Gone;
                    }
                },
            };
            match socket::send(
                fd.as_raw_fd(),
                frame,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(_) => return PeerSend::Delivered,
                Err(Errno::EAGAIN) => {
                    if let Some(until) = patience
                        && wait_writable(fd, until)
                    {
                        continue;
                    }
                    return PeerSend::Dropped;
                }
                Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ECONNREFUSED | Errno::ENOTCONN) => {
                    debug!(peer = %path.display(), "bus peer closed its end");
                    peer.fd = None;
                }
                Err(e) => {
                    warn!(peer = %path.display(), error = %e, "send to bus peer failed");
                    return PeerSend::Dropped;
                }
            }
        }
        PeerSend::Gone
    }

    fn connect(&self, path: &Path) -> nix::Result<OwnedFd> {
        let fd = seqpacket_socket()?;
        let want = self.opts.send_buffer;
        // SO_SNDBUFFORCE lets root go past wmem_max; others get what SO_SNDBUF allows.
        if socket::setsockopt(&fd, sockopt::SndBufForce, &want).is_err() {
            let _ = socket::setsockopt(&fd, sockopt::SndBuf, &want);
        }
        socket::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        Ok(fd)
    }

    fn remove_stale(&self, path: &Path) {
        if fs::remove_file(path).is_ok() {
            self.counters.stale_removed.fetch_add(1, Ordering::Relaxed);
            info!(socket = %path.display(), "removed stale socket of a dead endpoint");
        }
    }

    /// At open: sockets whose pid is not alive are confirmed dead by a refused connect
    /// (a live endpoint in another pid namespace still accepts) and removed.
    fn sweep_stale(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(pid) = path.file_name().and_then(OsStr::to_str).and_then(pid_of) else {
                continue;
            };
            let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                .map_or_else(|e| e != Errno::ESRCH, |()| true);
            if path == self.path || alive {
                continue;
            }
            if let Err(Errno::ECONNREFUSED) = self.connect(&path) {
                self.remove_stale(&path);
            }
        }
    }

    /// Re-lists the directory when its mtime changed (or changed too recently to trust).
    fn refresh_peers(&self, tx: &mut TxState) {
        let mtime = match self.dir_handle.metadata().and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(e) => {
                warn!(bus = %self.dir.display(), error = %e, "cannot stat bus directory");
                return;
            }
        };
        let racy = SystemTime::now()
            .duration_since(mtime)
            .map_or(true, |age| age < RACY_WINDOW);
        if tx.dir_mtime == Some(mtime) && !racy {
            return;
        }
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                warn!(bus = %self.dir.display(), error = %e, "cannot list bus directory");
                return;
            }
        };
        let mut seen = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let is_sock = path
                .file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|n| n.ends_with(SOCK_SUFFIX));
            if !is_sock || (path == self.path && !self.opts.receive_own) {
                continue;
            }
            seen.push(path);
        }
        tx.peers.retain(|p, _| seen.contains(p));
        for path in seen {
            tx.peers.entry(path).or_insert(Peer {
                fd: None,
                owed: false,
            });
        }
        tx.dir_mtime = Some(mtime);
    }

    /// Receives the next message, skipping (and counting) garbage and unknown frames.
    pub fn recv(&self) -> Result<Message> {
        loop {
            if let Some(Event::Message(m)) = self.recv_event_timeout(None)? {
                return Ok(m);
            }
        }
    }

    /// Like [`Endpoint::recv`], giving up after `timeout` (`Ok(None)`).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_event_timeout(Some(left))? {
                Some(Event::Message(m)) => return Ok(Some(m)),
                Some(Event::Skipped(_)) => continue,
                None => return Ok(None),
            }
        }
    }

    /// A message if one is waiting, without blocking.
    pub fn try_recv(&self) -> Result<Option<Message>> {
        loop {
            match self.try_recv_event()? {
                Some(Event::Message(m)) => return Ok(Some(m)),
                Some(Event::Skipped(_)) => continue,
                None => return Ok(None),
            }
        }
    }

    /// The next event (message or skipped frame), waiting at most `timeout` (`None`:
    /// forever).
    pub fn recv_event_timeout(&self, timeout: Option<Duration>) -> Result<Option<Event>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut rx = lock(&self.rx);
        loop {
            // No zero-timeout poll here: the blocking wait below returns at once if
            // anything is ready, and one syscall per message less matters at 100k msg/s.
            if let Some(ev) = self.try_recv_locked(&mut rx, false)? {
                return Ok(Some(ev));
            }
            let wait = match deadline {
                None => EpollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    // Round up so a sub-millisecond rest does not spin.
                    let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128);
                    EpollTimeout::try_from(ms as u64).unwrap_or(EpollTimeout::MAX)
                }
            };
            self.wait_ready(&mut rx, wait)?;
        }
    }

    /// The next event if one is waiting, without blocking.
    pub fn try_recv_event(&self) -> Result<Option<Event>> {
        let mut rx = lock(&self.rx);
        self.try_recv_locked(&mut rx, true)
    }

    fn wait_ready(&self, rx: &mut RxState, timeout: EpollTimeout) -> Result<usize> {
        let RxState { events, ready, .. } = rx;
        match self.epoll.wait(events, timeout) {
            Ok(n) => {
                ready.extend(events[..n].iter().map(|e| e.data()));
                Ok(n)
            }
            Err(Errno::EINTR) => Ok(0),
            Err(e) => Err(Error::Recv(e)),
        }
    }

    /// Reads from the connections epoll reported ready; `poll` asks epoll again (without
    /// waiting) when that list runs out.
    fn try_recv_locked(&self, rx: &mut RxState, mut poll: bool) -> Result<Option<Event>> {
        if let Some(ev) = rx.pending.pop_front() {
            return Ok(Some(ev));
        }
        loop {
            let Some(token) = rx.ready.pop_front() else {
                if !poll || self.wait_ready(rx, EpollTimeout::ZERO)? == 0 {
                    return Ok(None);
                }
                poll = false;
                continue;
            };
            if token == LISTENER_TOKEN {
                self.accept_all(rx);
                continue;
            }
            let Some(fd) = rx.inbound.get(&token) else {
                continue;
            };
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC;
            match socket::recv(fd.as_raw_fd(), &mut rx.buf, flags) {
                Ok(0) => self.close_inbound(rx, token),
                Ok(n) => {
                    // Round robin: this connection may hold more, but others go first.
                    rx.ready.push_back(token);
                    return Ok(Some(self.decode_received(rx, n)));
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => {
                    debug!(error = %e, "bus connection failed; closing it");
                    self.close_inbound(rx, token);
                }
            }
        }
    }

    /// The events of a datagram of `n` octets: its first frame's, the others (a batch)
    /// queued in `rx.pending`. Frames are cut by their headers' lengths; whatever does not
    /// cut into whole frames is one garbage event, as a datagram of garbage is.
    fn decode_received(&self, rx: &mut RxState, n: usize) -> Event {
        if n > rx.buf.len() {
            return self.decode_frame(rx, None, n);
        }
        let mut frames = Vec::new();
        let mut at = 0;
        while at < n {
            let len = match frame::frame_len(&rx.buf[at..n]) {
                Some(len) if at + len < n => len,
                _ => n - at,
            };
            frames.push((at, len));
            at += len;
        }
        let mut events = frames
            .into_iter()
            .map(|(at, len)| self.decode_frame(rx, Some(at), len));
        let first = events.next().expect("a datagram has at least one frame");
        let rest: Vec<Event> = events.collect();
        rx.pending.extend(rest);
        first
    }

    /// One frame of `len` octets at `at` in the receive buffer (`None`: a datagram longer
    /// than the buffer).
    fn decode_frame(&self, rx: &mut RxState, at: Option<usize>, len: usize) -> Event {
        let result = match at {
            None => Err(FrameError::TooLong(len)),
            Some(at) => frame::decode(&rx.buf[at..at + len]),
        };
        let n = len;
        match result {
            Ok(msg) => {
                self.counters.received.fetch_add(1, Ordering::Relaxed);
                // Bounded: a tap living through many short-lived injectors forgets them.
                if rx.last_serial.len() >= MAX_TRACKED_SENDERS {
                    rx.last_serial.clear();
                }
                let key = (msg.header.pid, msg.header.sender.clone());
                let serial = msg.header.serial;
                let last = rx.last_serial.insert(key, serial).unwrap_or(0);
                // A gap notice carries the serial of the last message lost, not a new one.
                let next = if msg.body == Body::GapNotice {
                    last
                } else {
                    last + 1
                };
                // A lower serial is a restarted sender (same pid reused): no gap.
                if serial > next && last != 0 {
                    self.counters
                        .missed
                        .fetch_add(serial - next, Ordering::Relaxed);
                }
                Event::Message(msg)
            }
            Err(e) => {
                if matches!(e, FrameError::LegacyBincode) {
                    // Not a curiosity from the future but a daemon left on an old release:
                    // nothing it sends is understood here, so say so where people look.
                    self.counters.unknown.fetch_add(1, Ordering::Relaxed);
                    warn!(
                        len = n,
                        version = frame::VERSION_BINCODE,
                        expected = frame::VERSION,
                        "skipped a frame from an older mipsock whose frames are bincode \
                         (version 1; this one reads postcard, version 2): upgrade both ends \
                         of the bus"
                    );
                } else if e.is_unknown() {
                    self.counters.unknown.fetch_add(1, Ordering::Relaxed);
                    debug!(error = %e, len = n, "skipped a frame of an unknown version or type");
                } else {
                    self.counters.garbage.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, len = n, "dropped garbage received on the bus");
                }
                Event::Skipped(e)
            }
        }
    }

    fn accept_all(&self, rx: &mut RxState) {
        loop {
            match socket::accept4(
                self.listener.as_raw_fd(),
                SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            ) {
                Ok(raw) => {
                    // SAFETY: accept4 just returned this descriptor; nobody else owns it.
                    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                    let token = rx.next_token;
                    rx.next_token += 1;
                    if let Err(e) = self
                        .epoll
                        .add(fd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
                    {
                        warn!(error = %e, "cannot watch a bus connection");
                        continue;
                    }
                    if rx.inbound.len() >= MAX_INBOUND {
                        // Tokens count up: the smallest is the oldest connection.
                        if let Some(&oldest) = rx.inbound.keys().min() {
                            debug!(
                                open = rx.inbound.len(),
                                "too many bus connections; closing the oldest"
                            );
                            self.close_inbound(rx, oldest);
                        }
                    }
                    rx.inbound.insert(token, fd);
                    // Data may already wait on it: look before the next epoll round.
                    rx.ready.push_back(token);
                }
                Err(Errno::EINTR | Errno::ECONNABORTED) => {}
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    warn!(error = %e, "accept on the bus socket failed");
                    return;
                }
            }
        }
    }

    fn close_inbound(&self, rx: &mut RxState, token: u64) {
        if let Some(fd) = rx.inbound.remove(&token) {
            let _ = self.epoll.delete(fd.as_fd());
        }
    }

    /// How soon to call [`Endpoint::send_gap_notices`] again while readers are still owed
    /// a notice.
    pub const GAP_NOTICE_RETRY: Duration = Duration::from_millis(100);

    /// Tells each reader whose last messages from us were dropped (its queue was full), and
    /// that has received nothing from us since, that it lost them: a [`Body::GapNotice`]
    /// carrying our last serial, to that reader only. Without it a reader cannot see a
    /// loss at the end of a burst until we send again, which may be never (a home agent
    /// that took over a fleet and then has nothing to say). Call it from the event loop,
    /// again later while it returns more than 0: the readers still owed a notice (their
    /// queue still full).
    pub fn send_gap_notices(&self) -> usize {
        let mut tx = lock(&self.tx);
        if !tx.peers.values().any(|p| p.owed) {
            return 0;
        }
        // Not a new serial: the reader counts up to and including this one as lost.
        let notice = Message::new(Body::GapNotice);
        let header = self.header(&notice.header, tx.serial);
        let mut buf = Vec::new();
        if frame::encode_into(&mut buf, &header, &Body::GapNotice).is_err() {
            return 0;
        }
        let mut pending = 0;
        let TxState { peers, .. } = &mut *tx;
        for (path, peer) in peers.iter_mut().filter(|(_, p)| p.owed) {
            match self.send_to_peer(path, peer, &buf, None) {
                PeerSend::Delivered | PeerSend::Gone => peer.owed = false,
                PeerSend::Dropped => pending += 1,
            }
        }
        pending
    }

    /// Messages other endpoints had to drop for us so far (gaps in their serials), without
    /// the locks [`Endpoint::stats`] takes: a reader that keeps state from what it hears
    /// checks it after each batch and re-reads that state when it grew.
    pub fn missed(&self) -> u64 {
        self.counters.missed.load(Ordering::Relaxed)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let tx = lock(&self.tx);
        let peers: Vec<PeerStats> = tx.peer_stats.values().cloned().collect();
        Stats {
            sent: c.sent.load(Ordering::Relaxed),
            delivered: tx.departed.0 + peers.iter().map(|p| p.delivered).sum::<u64>(),
            dropped: tx.departed.1 + peers.iter().map(|p| p.dropped).sum::<u64>(),
            stale_removed: c.stale_removed.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            garbage: c.garbage.load(Ordering::Relaxed),
            unknown: c.unknown.load(Ordering::Relaxed),
            missed: c.missed.load(Ordering::Relaxed),
            peers,
        }
    }

    /// Answers a [`Body::StateRequest`] with this owner's `items`: as many
    /// [`Body::StateDump`] chunks as needed, then a [`Body::StateEnd`], all carrying the
    /// request's `seq`. `errno` (0: fine) goes into the StateEnd, so an owner that cannot
    /// dump says so instead of staying silent.
    pub fn reply_state(&self, request: &Message, items: Vec<StateItem>, errno: u32) -> Result<()> {
        let requester_pid = request.header.pid;
        let seq = request.header.seq;
        let total = items.len() as u32;
        // Only the requester is waited for; the other readers of the bus see the dump as
        // any message, dropped when their queue is full.
        let wait = Some((requester_pid as i32, Instant::now() + DUMP_PATIENCE));
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        for item in items {
            // Counted, not encoded: the Size flavor only adds up the octets.
            let size =
                postcard::serialize_with_flavor(&item, postcard::ser_flavors::Size::default())
                    .unwrap_or(DUMP_CHUNK_BYTES);
            if !chunk.is_empty() && chunk_bytes + size > DUMP_CHUNK_BYTES {
                let items = std::mem::take(&mut chunk);
                self.send_with(
                    &Message::new(Body::StateDump(StateDump {
                        requester_pid,
                        items,
                    }))
                    .with_seq(seq),
                    wait,
                )?;
                chunk_bytes = 0;
            }
            chunk_bytes += size;
            chunk.push(item);
        }
        if !chunk.is_empty() {
            self.send_with(
                &Message::new(Body::StateDump(StateDump {
                    requester_pid,
                    items: chunk,
                }))
                .with_seq(seq),
                wait,
            )?;
        }
        let mut end = Message::new(Body::StateEnd(StateEnd {
            requester_pid,
            items: total,
        }))
        .with_seq(seq);
        end.header.errno = errno;
        self.send_with(&end, wait)?;
        Ok(())
    }

    /// Asks every owner for its state and collects the answers for `timeout`, or until
    /// `expect_owners` owners have sent their StateEnd. Messages that are not part of the
    /// answer are returned too, so a daemon resyncing at start loses no event.
    pub fn request_state(
        &self,
        timeout: Duration,
        expect_owners: Option<usize>,
    ) -> Result<StateAnswer> {
        let mut answer = self.send_state_request()?;
        let deadline = Instant::now() + timeout;
        while !answer.done(expect_owners) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(msg) = self.recv_timeout(left)? else {
                break;
            };
            answer.absorb(msg);
        }
        Ok(answer)
    }

    /// Sends a state request; the returned (empty) answer knows which replies are its own.
    pub(crate) fn send_state_request(&self) -> Result<StateAnswer> {
        // Unique enough per requester: replies are matched on our pid and this number.
        let seq = ((now_ns() as u32) ^ self.pid.rotate_left(16)) | 1;
        self.send(&Message::new(Body::StateRequest).with_seq(seq))?;
        Ok(StateAnswer {
            requester_pid: self.pid,
            seq,
            ..StateAnswer::default()
        })
    }
}

/// The state owners answered with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateAnswer {
    /// pid of the requester.
    pub requester_pid: u32,
    /// `seq` of the request.
    pub seq: u32,
    /// One entry per answering endpoint, in order of first reply.
    pub owners: Vec<OwnerState>,
    /// Other messages received meanwhile.
    pub other: Vec<Message>,
}

impl StateAnswer {
    /// Files a received message: part of the answer, or one of the `other` messages.
    pub fn absorb(&mut self, msg: Message) {
        let for_us = |pid: u32| pid == self.requester_pid && msg.header.seq == self.seq;
        match &msg.body {
            Body::StateDump(d) if for_us(d.requester_pid) => {
                let items = d.items.clone();
                self.owner(&msg.header).items.extend(items);
            }
            Body::StateEnd(e) if for_us(e.requester_pid) => {
                let owner = self.owner(&msg.header);
                owner.complete = true;
                owner.errno = msg.header.errno;
            }
            _ => self.other.push(msg),
        }
    }

    /// Whether `expect_owners` owners have answered completely (never, if `None`).
    pub fn done(&self, expect_owners: Option<usize>) -> bool {
        expect_owners.is_some_and(|n| self.owners.iter().filter(|o| o.complete).count() >= n)
    }

    /// Whether an endpoint named one of `senders` (e.g. "had") has answered completely.
    pub fn complete_from(&self, senders: &[&str]) -> bool {
        self.owners
            .iter()
            .any(|o| o.complete && senders.contains(&o.sender.as_str()))
    }

    fn owner(&mut self, h: &Header) -> &mut OwnerState {
        let i = match self
            .owners
            .iter()
            .position(|o| o.pid == h.pid && o.sender == h.sender)
        {
            Some(i) => i,
            None => {
                self.owners.push(OwnerState {
                    pid: h.pid,
                    sender: h.sender.clone(),
                    items: Vec::new(),
                    complete: false,
                    errno: 0,
                });
                self.owners.len() - 1
            }
        };
        &mut self.owners[i]
    }
}

/// What one owner answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerState {
    /// Owner's pid.
    pub pid: u32,
    /// Owner's endpoint name.
    pub sender: String,
    /// Its items.
    pub items: Vec<StateItem>,
    /// Whether its StateEnd arrived.
    pub complete: bool,
    /// errno from its StateEnd.
    pub errno: u32,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // Readers notice our connections closing; writers notice the file is gone.
        let _ = fs::remove_file(&self.path);
    }
}

/// Waits until `fd` can take a datagram, or `until`; whether it can.
fn wait_writable(fd: &OwnedFd, until: Instant) -> bool {
    let left = until.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLOUT,
    )];
    matches!(nix::poll::poll(&mut fds, ms), Ok(n) if n > 0)
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(OsStr::to_str).unwrap_or("?")
}

fn prepare_dir(dir: &Path, opts: &EndpointOptions) -> Result<()> {
    let err = |source| Error::BusDir {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.is_dir() {
        if !opts.create_dir {
            return Err(err(io::Error::from(io::ErrorKind::NotFound)));
        }
        // 0770: only root and the bus group may create or reach sockets in it.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o770)
            .create(dir)
            .map_err(err)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o770)).map_err(err)?;
        if let Some(gid) = opts.group {
            std::os::unix::fs::chown(dir, None, Some(gid)).map_err(err)?;
        }
    }
    Ok(())
}

fn set_socket_perms(path: &Path, opts: &EndpointOptions) -> io::Result<()> {
    // Connecting needs write permission on the socket file: 0660 = owner and group.
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = opts.group {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    Ok(())
}

fn io_to_nix(e: &io::Error) -> nix::Error {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}
