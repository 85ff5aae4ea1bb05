//! Mobility Header I/O (being written).
