//! Movement detection (being written).
