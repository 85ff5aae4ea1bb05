//! nemo-lab (being written).
