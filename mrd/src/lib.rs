//! # mrd — the NEMO mobile router
//!
//! A sans-IO core ([`core::MrCore`]) keeps the Binding Update List of the home
//! registration: it sends Binding Updates with the IPv6 (RFC 3963) and IPv4 (RFC 5555)
//! mobile network prefixes from the care-of address the movement detector reports,
//! retransmits and refreshes them (RFC 6275 §11.7-§11.8), checks the Binding
//! Acknowledgements (RFC 4285 authentication included) and announces BUL_ADD /
//! BUL_REMOVE. With multiple care-of addresses (RFC 5648) that BU is a bulk registration
//! of every uplink, each binding announced on its own. It never touches a socket, a clock
//! or a file.
//!
//! ## Driving the core (the shell's loop)
//!
//! ```text
//! mr = MrCore::new(config)?; mr.set_wall_clock(Instant::now(), SystemTime::now() - UNIX_EPOCH)
//! loop {
//!     wait for a packet, a bus message or mr.poll_timeout()
//!     MD_INFO          => mr.handle_md_info(now, &md)
//!     MH packet        => walk(&buf) -> Walk::Mobility(p) => mr.handle_packet(now, ReceivedSignal::from_packet(&p))
//!     STATE_REQUEST    => reply_state(request, mr.handle_state_request(now) as BUL items)
//!     timeout          => mr.handle_timeout(now)
//!     while let Some(tx) = mr.poll_transmit() { send tx.to_packet() on IPPROTO_RAW }
//!     while let Some(ev) = mr.poll_event()    { BUL_ADD/BUL_REMOVE on the bus; log Stopped }
//! }
//! ```
//!
//! `tests/pair.rs` runs this core against `had`'s on virtual time.
//!
//! [`shell`] is that loop for real (the `mrd` binary): SHISA's command line, the
//! configuration (`conf`), `mhio`'s sockets and guard, the mipsock bus, signals.

#![forbid(unsafe_code)]

pub mod core;
pub mod shell;

pub use core::{
    BuKind, ConfigError, Ipv4MnpOutcome, Ipv4Support, McoaSupport, MobilitySa, MrCore,
    MrCoreConfig, MrEvent, MrStats, ParameterProblem, ReceivedSignal, RegistrationMode,
    RegistrationState, StopReason, Transmit,
};
