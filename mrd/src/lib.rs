//! # mrd — the NEMO mobile router
//!
//! A sans-IO core ([`core::MrCore`]) keeps the Binding Update List of the home
//! registration: it sends Binding Updates with the IPv6 (RFC 3963) and IPv4 (RFC 5555)
//! mobile network prefixes from the care-of address the movement detector reports,
//! retransmits and refreshes them (RFC 6275 §11.7-§11.8), checks the Binding
//! Acknowledgements (RFC 4285 authentication included) and announces BUL_ADD /
//! BUL_REMOVE. It never touches a socket, a clock or a file.

#![forbid(unsafe_code)]

pub mod core;

pub use core::{
    BuKind, ConfigError, Ipv4MnpOutcome, Ipv4Support, MobilitySa, MrCore, MrCoreConfig, MrEvent,
    ReceivedSignal, RegistrationMode, RegistrationState, StopReason, Transmit,
};
