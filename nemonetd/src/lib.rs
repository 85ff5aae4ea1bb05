//! Tunnels, routes and the user-space data plane of a NEMO mobile router or home agent.

pub mod dataplane;
pub mod netops;
pub mod routes;
pub mod tun;
