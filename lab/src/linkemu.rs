//! A link emulator for the lab: this kernel has no netem (`NET_SCH_NETEM` is off), so a
//! small user-space bridge between two interfaces delays, jitters, drops, rate-limits and
//! cuts frames, each direction on its own — enough to make a veth behave like LTE, Wi-Fi or
//! a satellite hop.
//!
//! [`Direction`] is the whole behaviour, sans-IO: frames in with the time they arrived,
//! frames out when they are due. [`run`] is the thin shell: two `AF_PACKET` sockets, one
//! per interface, and `poll(2)`. The profile can be changed while it runs: the shell
//! re-reads its control file (a profile name) when the file changes.
//!
//! Frames keep their order (a later frame is never due before an earlier one, as on a
//! real link whose jitter comes from queueing), the queue is bounded in octets (tail
//! drop, like a modem's buffer), and losses come from a seeded generator so that a run can
//! be repeated.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One direction's behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Its name (`ideal`, `lte`, `wifi`, `sat`, `down`).
    pub name: &'static str,
    /// One-way base delay.
    pub delay: Duration,
    /// Added delay, uniform in 0..=jitter (ordering kept).
    pub jitter: Duration,
    /// Probability that a frame is lost (0 to 1).
    pub loss: f64,
    /// Serialisation rate, bits per second; `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Octets that may wait for the link before the tail is dropped.
    pub queue_bytes: usize,
    /// The link carries nothing (an outage: coverage lost, tunnel entered).
    pub down: bool,
}

impl Profile {
    /// The profiles `nemo-lab` knows, by name. Round-trip times are twice the one-way
    /// delay plus jitter: "lte" about 40-60 ms with 1 % loss each way and 30 Mbit/s
    /// (a loaded LTE cell), "wifi" a few ms, "sat" about 600 ms (geostationary).
    pub const NAMES: [&'static str; 5] = ["ideal", "lte", "wifi", "sat", "down"];

    /// The profile called `name`.
    pub fn named(name: &str) -> Option<Profile> {
        let p = |name, delay_ms, jitter_ms, loss, mbit: Option<u64>| Profile {
            name,
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
            loss,
            rate_bps: mbit.map(|m| m * 1_000_000),
            // About 100 ms of the link's rate, at least 64 KiB.
            queue_bytes: mbit.map_or(1 << 20, |m| ((m * 1_000_000 / 8 / 10) as usize).max(65_536)),
            down: false,
        };
        Some(match name {
            "ideal" => p("ideal", 0, 0, 0.0, None),
            "lte" => p("lte", 20, 10, 0.01, Some(30)),
            "wifi" => p("wifi", 2, 3, 0.001, Some(100)),
            "sat" => p("sat", 300, 10, 0.005, Some(10)),
            "down" => Profile {
                down: true,
                ..p("down", 0, 0, 1.0, None)
            },
            _ => return None,
        })
    }
}

/// What became of a frame handed to [`Direction::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Will leave at this instant.
    Queued(Instant),
    /// Lost on the way (the profile's loss).
    Lost,
    /// The queue was full (tail drop).
    QueueFull,
    /// The link is down.
    Down,
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames delivered.
    pub passed: u64,
    /// Frames lost by the profile's loss.
    pub lost: u64,
    /// Frames dropped at a full queue.
    pub queue_full: u64,
    /// Frames dropped while the link was down.
    pub down: u64,
}

/// SplitMix64: a small, well-mixed, seedable generator (losses and jitter only).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One direction of an emulated link.
#[derive(Debug, Clone)]
pub struct Direction {
    profile: Profile,
    queue: VecDeque<(Instant, Vec<u8>)>,
    queued_bytes: usize,
    /// When the link has finished sending what is queued (rate limiting).
    free_at: Option<Instant>,
    /// The last frame's due time: none is due before it (order kept).
    last_due: Option<Instant>,
    rng: Rng,
    counters: Counters,
}

impl Direction {
    /// A direction with `profile`; `seed` makes losses and jitter repeatable.
    pub fn new(profile: Profile, seed: u64) -> Direction {
        Direction {
            profile,
            queue: VecDeque::new(),
            queued_bytes: 0,
            free_at: None,
            last_due: None,
            rng: Rng(seed),
            counters: Counters::default(),
        }
    }

    /// The profile in use.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Switches profile; frames already queued keep their due times, except that a link
    /// going down drops them (they were on the air).
    pub fn set_profile(&mut self, profile: Profile) {
        if profile.down {
            self.flush();
        }
        self.profile = profile;
    }

    /// The link lost its carrier: what was on the air is gone (a frame in flight on the
    /// old link never arrives on the next one).
    pub fn flush(&mut self) {
        self.counters.down += self.queue.len() as u64;
        self.queue.clear();
        self.queued_bytes = 0;
        self.free_at = None;
        self.last_due = None;
    }

    /// Counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// A frame arrived at `now`.
    pub fn push(&mut self, now: Instant, frame: Vec<u8>) -> Fate {
        let p = &self.profile;
        if p.down {
            self.counters.down += 1;
            return Fate::Down;
        }
        if p.loss > 0.0 && self.rng.unit() < p.loss {
            self.counters.lost += 1;
            return Fate::Lost;
        }
        if self.queued_bytes + frame.len() > p.queue_bytes {
            self.counters.queue_full += 1;
            return Fate::QueueFull;
        }
        // Serialisation at the link's rate, after what is already being sent.
        let start = self.free_at.filter(|t| *t > now).unwrap_or(now);
        let sent = match p.rate_bps {
            Some(bps) if bps > 0 => {
                start
                    + Duration::from_nanos(
                        (frame.len() as u64 * 8).saturating_mul(1_000_000_000) / bps,
                    )
            }
            _ => start,
        };
        self.free_at = Some(sent);
        let jitter = if p.jitter.is_zero() {
            Duration::ZERO
        } else {
            p.jitter.mul_f64(self.rng.unit())
        };
        let mut due = sent + p.delay + jitter;
        if let Some(last) = self.last_due
            && due < last
        {
            due = last;
        }
        self.last_due = Some(due);
        self.queued_bytes += frame.len();
        self.queue.push_back((due, frame));
        Fate::Queued(due)
    }

    /// The next frame due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.queue.front().is_some_and(|(due, _)| *due <= now) {
            let (_, frame) = self.queue.pop_front()?;
            self.queued_bytes -= frame.len();
            self.counters.passed += 1;
            return Some(frame);
        }
        None
    }

    /// When the next frame is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }
}

/// `ETH_P_ALL`: every frame, whatever its protocol.
const ETH_P_ALL: u16 = 0x0003;
/// `PACKET_OUTGOING`: a copy of a frame this host sent (our own, on the other side).
const PACKET_OUTGOING: u8 = 4;

fn packet_socket(ifname: &str) -> std::io::Result<socket2::Socket> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let ifindex = nix::net::if_::if_nametoindex(ifname)
        .map_err(|e| std::io::Error::other(format!("{ifname}: {e}")))?;
    let socket = socket2::Socket::new(
        socket2::Domain::PACKET,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(i32::from(ETH_P_ALL.to_be()))),
    )?;
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ALL.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: a valid socket and a sockaddr_ll that lives across the call.
    let rc = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&raw const sll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Frames for any MAC address: the emulator is a wire, not a host.
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex as i32,
        mr_type: libc::PACKET_MR_PROMISC as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    // SAFETY: a valid socket and a packet_mreq that lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&raw const mreq).cast(),
            std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Reads every frame waiting on `from` (not our own copies) into `dir`. True when the
/// interface went down meanwhile.
fn drain(from: &socket2::Socket, dir: &mut Direction, buf: &mut [u8]) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: nix::libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<nix::libc::sockaddr_ll>() as nix::libc::socklen_t;
        // SAFETY: the buffer and the address are valid for the lengths given.
        let n = unsafe {
            nix::libc::recvfrom(
                from.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut sll).cast(),
                &raw mut len,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            // ENETDOWN: the interface went down (the lab unplugs a link that way); the
            // socket reports it once and takes frames again when it comes back up.
            return if e.raw_os_error() == Some(nix::libc::ENETDOWN) {
                Ok(true)
            } else if e.kind() == std::io::ErrorKind::WouldBlock {
                Ok(false)
            } else {
                Err(e)
            };
        }
        if sll.sll_pkttype == PACKET_OUTGOING {
            continue;
        }
        dir.push(Instant::now(), buf[..n as usize].to_vec());
    }
}

/// Sends what `dir` has due now on `to`. A frame the interface refuses is counted and
/// dropped: larger than its MTU (a GSO frame), or the interface is down (the lab unplugs
/// a link by taking the MR-facing end down) or out of buffers.
fn send_due(to: &socket2::Socket, dir: &mut Direction, refused: &mut u64) -> std::io::Result<()> {
    use nix::libc::{EMSGSIZE, ENETDOWN, ENOBUFS, ENXIO};
    let now = Instant::now();
    while let Some(frame) = dir.pop_due(now) {
        match to.send(&frame) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(EMSGSIZE | ENETDOWN | ENOBUFS | ENXIO)
                ) =>
            {
                *refused += 1
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => *refused += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How often `ifname`'s carrier changed (sysfs of the caller's namespace): a flap between
/// two looks shows as a different count, however short it was.
fn carrier_changes(ifname: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/carrier_changes"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The profile named in `control`, if it names one.
fn read_control(control: &std::path::Path) -> Option<Profile> {
    let text = std::fs::read_to_string(control).ok()?;
    Profile::named(text.trim())
}

/// Bridges interfaces `a` and `b` through two [`Direction`]s with `profile`, or the one
/// named in the file `control` when given (re-read when it changes), until SIGTERM or
/// SIGINT. Prints a line with the counters on each profile change and at the end.
///
/// # Errors
/// Opening the sockets; a socket failing.
pub fn run(
    a: &str,
    b: &str,
    profile: Profile,
    control: Option<&std::path::Path>,
    seed: u64,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let profile = control.and_then(read_control).unwrap_or(profile);
    let (sa, sb) = (packet_socket(a)?, packet_socket(b)?);
    let mut ab = Direction::new(profile.clone(), seed);
    let mut ba = Direction::new(profile, seed ^ 0x5555_5555);
    let mut buf = vec![0u8; 65_536 + 64];
    let mut refused = 0u64;
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = control.and_then(modified);
    let mut checked = Instant::now();
    let mut carrier = (carrier_changes(a), carrier_changes(b));
    println!("link {a} <-> {b}: {}", ab.profile().name);
    crate::net::install_signal_handlers();
    while !crate::net::interrupted() {
        let now = Instant::now();
        let next = [ab.next_due(), ba.next_due()].into_iter().flatten().min();
        let wait = next.map_or(Duration::from_millis(100), |t| {
            t.saturating_duration_since(now)
                .min(Duration::from_millis(100))
        });
        // Round up: waking before a frame is due would spin.
        let timeout_ms = wait.as_micros().div_ceil(1000) as nix::libc::c_int;
        let mut fds = [
            nix::libc::pollfd {
                fd: sa.as_raw_fd(),
                events: nix::libc::POLLIN,
                revents: 0,
            },
            nix::libc::pollfd {
                fd: sb.as_raw_fd(),
                events: nix::libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd entries that live across the call.
        if unsafe { nix::libc::poll(fds.as_mut_ptr(), 2, timeout_ms) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // Either side going down, or losing its carrier even for a moment (the lab
        // unplugs or moves a link that way), takes what was in flight with it, both ways:
        // a frame sent on the old link must not arrive on the new one. Looked at before
        // reading: what is read after the flap was sent on the new link (the RS that
        // follows a link coming up) and stays.
        let flaps = (carrier_changes(a), carrier_changes(b));
        if flaps != carrier {
            carrier = flaps;
            ab.flush();
            ba.flush();
        }
        if drain(&sa, &mut ab, &mut buf)? | drain(&sb, &mut ba, &mut buf)? {
            ab.flush();
            ba.flush();
        }
        send_due(&sb, &mut ab, &mut refused)?;
        send_due(&sa, &mut ba, &mut refused)?;
        if let Some(control) = control
            && checked.elapsed() >= Duration::from_millis(100)
        {
            checked = Instant::now();
            let m = modified(control);
            if m != seen {
                seen = m;
                if let Some(p) = read_control(control) {
                    println!(
                        "link {a} <-> {b}: {} (so far {a}->{b} {:?}, {b}->{a} {:?})",
                        p.name,
                        ab.counters(),
                        ba.counters()
                    );
                    ab.set_profile(p.clone());
                    ba.set_profile(p);
                }
            }
        }
    }
    println!(
        "link {a} <-> {b} stopped: {a}->{b} {:?}, {b}->{a} {:?}, refused by an interface {refused}",
        ab.counters(),
        ba.counters()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn profiles_by_name() {
        for n in Profile::NAMES {
            assert_eq!(Profile::named(n).unwrap().name, n);
        }
        assert!(Profile::named("5g-marketing").is_none());
        let lte = Profile::named("lte").unwrap();
        // RTT 40-60 ms: twice 20 ms plus up to twice 10 ms of jitter.
        assert_eq!(
            (lte.delay, lte.jitter),
            (Duration::from_millis(20), Duration::from_millis(10))
        );
    }

    #[test]
    fn ideal_passes_at_once_in_order() {
        let t0 = Instant::now();
        let mut d = Direction::new(Profile::named("ideal").unwrap(), 1);
        assert_eq!(d.push(t0, vec![1]), Fate::Queued(t0));
        assert_eq!(d.push(t0, vec![2]), Fate::Queued(t0));
        assert_eq!(d.pop_due(t0), Some(vec![1]));
        assert_eq!(d.pop_due(t0), Some(vec![2]));
        assert_eq!(d.pop_due(t0), None);
        assert_eq!(d.counters().passed, 2);
    }

    #[test]
    fn delay_and_jitter_keep_the_order() {
        let t0 = Instant::now();
        let mut p = Profile::named("lte").unwrap();
        p.loss = 0.0;
        p.rate_bps = None;
        let mut d = Direction::new(p, 7);
        let mut last = t0;
        for i in 0..1000u64 {
            let now = t0 + Duration::from_micros(i * 100);
            let Fate::Queued(due) = d.push(now, vec![0; 100]) else {
                panic!("not queued")
            };
            assert!(due >= now + Duration::from_millis(20), "at least the delay");
            assert!(
                due <= now + Duration::from_millis(30) || due == last,
                "at most delay + jitter, or held behind the previous one"
            );
            assert!(due >= last, "order kept");
            last = due;
        }
        assert_eq!(d.next_due().unwrap(), d.queue.front().unwrap().0);
        assert!(d.pop_due(ms(t0, 19)).is_none());
    }

    #[test]
    fn rate_limits_and_the_queue_is_bounded() {
        let t0 = Instant::now();
        // 8 Mbit/s: a 1000-octet frame takes 1 ms.
        let p = Profile {
            name: "test",
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            rate_bps: Some(8_000_000),
            queue_bytes: 10_000,
            down: false,
        };
        let mut d = Direction::new(p, 1);
        let fates: Vec<Fate> = (0..12).map(|_| d.push(t0, vec![0; 1000])).collect();
        assert_eq!(fates[0], Fate::Queued(ms(t0, 1)));
        assert_eq!(fates[9], Fate::Queued(ms(t0, 10)));
        assert_eq!(
            &fates[10..],
            &[Fate::QueueFull, Fate::QueueFull],
            "10 000 octets at most"
        );
        // Half of them have left after 5 ms; room again.
        let mut n = 0;
        while d.pop_due(ms(t0, 5)).is_some() {
            n += 1;
        }
        assert_eq!(n, 5);
        assert_eq!(d.push(ms(t0, 5), vec![0; 1000]), Fate::Queued(ms(t0, 11)));
        assert_eq!(d.counters().queue_full, 2);
    }

    #[test]
    fn losses_follow_the_profile_and_the_seed() {
        let t0 = Instant::now();
        let mut p = Profile::named("lte").unwrap();
        p.loss = 0.1;
        p.rate_bps = None;
        let run = |seed| {
            let mut d = Direction::new(p.clone(), seed);
            (0..10_000)
                .filter(|_| d.push(t0, vec![0]) == Fate::Lost)
                .count()
        };
        let lost = run(42);
        assert!((800..1200).contains(&lost), "about 10 %: {lost}");
        assert_eq!(run(42), lost, "the same seed, the same losses");
    }

    #[test]
    fn a_link_going_down_drops_what_is_on_it_and_everything_after() {
        let t0 = Instant::now();
        let mut d = Direction::new(Profile::named("sat").unwrap(), 3);
        let queued = (0..5)
            .filter(|_| matches!(d.push(t0, vec![0; 100]), Fate::Queued(_)))
            .count() as u64;
        d.set_profile(Profile::named("down").unwrap());
        assert_eq!(d.next_due(), None);
        assert_eq!(d.push(t0, vec![0]), Fate::Down);
        assert_eq!(d.counters().down, queued + 1);
        d.set_profile(Profile::named("ideal").unwrap());
        assert_eq!(d.push(ms(t0, 1), vec![9]), Fate::Queued(ms(t0, 1)));
    }
}
