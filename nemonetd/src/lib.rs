//! Tunnels, routes and data plane (being written).
