//! # had — the NEMO home agent
//!
//! A sans-IO core ([`core::Ha`]) holds the binding cache and processes Binding Updates per
//! RFC 6275 §9.5/§10.3 and RFC 3963 §6, with IPv4 mobile network prefixes (RFC 5555 IPv4
//! Home Address options, Shima's implicit IPv4 MNPs, SHISA's legacy type-11 option) and
//! RFC 4285 authentication. It never touches a socket, a clock or a file: the shell feeds it
//! `now` (monotonic, [`std::time::Instant`]) and the wall clock (a `Duration` since the UNIX
//! epoch, for RFC 4285 timestamps and persisted expiry times), and pulls transmits, events
//! and the next timeout.
//!
//! [`journal`] is the persistence (an append-only, CRC-framed, fsync'ed journal); it does
//! file I/O and is not part of the core.
//!
//! [`shell`] is the daemon around both (the `had` binary): SHISA's command line, the
//! configuration (`conf`), `mhio`'s sockets, guard and proxy ND, the mipsock bus, signals.
//!
//! ## Driving the core (the shell's loop)
//!
//! ```text
//! loop {
//!     wait for a packet, a bus message or ha.poll_timeout()
//!     ha.handle_packet(now, wall, &signal) / ha.handle_timeout(now)
//!     while let Some(ev) = ha.poll_event()   { HaEvent::Persist => journal.append (batched),
//!                                              others => bus / proxy ND }
//!     journal.sync()                         // fsync BEFORE any BA leaves
//!     while let Some(tx) = ha.poll_transmit() { send }
//! }
//! ```
//! The core queues the [`HaEvent::Persist`] of a binding change before the BA that
//! acknowledges it; a shell that drains (and syncs) events before transmits can never
//! acknowledge a binding that a `kill -9` would lose.

#![forbid(unsafe_code)]

pub mod config;
pub mod core;
#[doc(hidden)]
pub mod fuzzing;
pub mod journal;
pub mod record;
pub mod redundancy;
pub mod shell;

pub use config::{
    AuthPolicy, BrrConfig, DEFAULT_TIMESTAMP_WINDOW, HaCoreConfig, Ipv4MnpSupport, MobilitySa,
    PrefixMode, PrefixTableRow, ReplayProtection,
};
pub use core::{
    ChecksumState, ConfigError, Ha, HaEvent, HaStats, HaoSignal, ParameterProblem, ProxyNd,
    ReceivedSignal, Transmit, UdpV4Path,
};
pub use record::{JournalRecord, PersistedBinding};
