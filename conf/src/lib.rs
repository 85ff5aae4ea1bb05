//! SHISA configuration grammar (being written).
