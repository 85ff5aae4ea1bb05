//! Home agent (being written).
