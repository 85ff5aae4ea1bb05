//! # babymdd — movement detection for the mobile router
//!
//! SHISA's `babymdd` for Linux: watches the egress links and their addresses over
//! rtnetlink, picks the care-of address (IPv6 before IPv4, interface preference, with a
//! hold-down against flapping links), notices when the router is back on its home link,
//! and broadcasts `MD_INFO` on the mipsock bus for `mrd`.
//!
//! * [`detector`]: the pure decision core, fed [`detector::Observation`]s and `now`.
//! * [`netlink`]: rtnetlink messages → observations; the start-up subscribe/dump.
//! * [`rs`]: Router Solicitations on a raw ICMPv6 socket.
//! * [`dhcp`]: DHCPv4 client for IPv4 care-of addresses (`--dhcp`).
//! * [`run`]: the daemon loop tying netlink, the detector, the bus and signals together.

pub mod cli;
pub mod detector;
pub mod dhcp;
#[doc(hidden)]
pub mod fuzzing;
pub mod netlink;
pub mod rs;
pub mod run;

pub use detector::{Detector, DetectorConfig, Observation, Output, Selection, WatchedInterface};
