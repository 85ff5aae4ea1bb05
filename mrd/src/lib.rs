//! Mobile router (being written).
