//! nemo-lab: a whole dual-stack mobile network in network namespaces (CN, router, home
//! agent, IPv6-only and dual-stack access networks, a mobile router with two uplinks, an
//! MNN and an IPv4-only host behind it), the real daemons started in it with SHISA's
//! command lines, Shima's demonstration and the DSMIPv6 paper's handover experiment.
//!
//! Everything needs root. Namespaces are `nl-<pid>-<node>`; every one is removed on
//! success, failure, SIGINT and SIGTERM.

pub mod apps;
pub mod chaos;
pub mod cli;
pub mod demo;
pub mod events;
pub mod failover;
pub mod handover;
pub mod linkemu;
pub mod multipath;
pub mod net;
pub mod soak;
pub mod topo;
pub mod up;
